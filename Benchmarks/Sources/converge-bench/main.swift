import ConvergeCore
import ConvergeGit
print(KindRegistry.builtIn.kindNames)
